"""What gunicorn serves (`gunicorn wsgi:app`) and Celery runs (`celery -A wsgi.celery worker`)."""

from portal import create_app

app = create_app()
celery = app.extensions["celery"]
