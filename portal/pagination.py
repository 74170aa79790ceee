"""Paginated lists for every list page."""

from flask import abort, current_app, request

from portal.extensions import db
from portal.ids import LARGEST_PAGE


def paginate(query):
    page = request.args.get("page", 1, type=int)
    if page > LARGEST_PAGE:
        abort(404)
    return db.paginate(
        query,
        page=page,
        per_page=current_app.config["SETTLE_PAGE_SIZE"],
        max_per_page=200,
        error_out=False,
    )
