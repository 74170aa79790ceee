"""What gunicorn serves (`gunicorn wsgi:app`) and Celery runs (`celery -A wsgi.celery worker`)."""

from portal import create_app, vault
from portal.extensions import db

app = create_app()
celery = app.extensions["celery"]
with app.app_context():
    vault.check(db.session)  # a key that cannot open the saved credentials stops start-up here
