"""Paginated lists for every list page."""

from flask import current_app, request

from portal.extensions import db


def paginate(query):
    return db.paginate(
        query,
        page=request.args.get("page", 1, type=int),
        per_page=current_app.config["SETTLE_PAGE_SIZE"],
        max_per_page=200,
        error_out=False,
    )
