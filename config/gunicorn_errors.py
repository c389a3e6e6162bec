"""gunicorn's own error answers (a request line too long, headers too large, a malformed
request) in the API's one error shape instead of its HTML page: installed by
config/gunicorn.conf.py in place of gunicorn.util.write_error, which every worker calls for
a request it refuses before Django sees it."""

import json

from gunicorn import util


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    from config.errors import error_body, error_for_status
    from config.request_id import current_request_id, request_id_new

    error = error_for_status(status_int)
    # In the project's default language, with a request id of its own: gunicorn answers
    # before any request header is read.
    request_id = request_id_new()
    token = current_request_id.set(request_id)
    try:
        body = error_body(error.code, str(error.message))
    finally:
        current_request_id.reset(token)
    body = json.dumps(body, ensure_ascii=False).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    util.write_nonblock(sock, head + body)


def install() -> None:
    util.write_error = write_json_error
