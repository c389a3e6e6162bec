import json

from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser


class JSONParser(DRFJSONParser):
    """DRF's JSON parser, with every way a body can fail to parse turned into a clean 400.

    DRF catches ValueError only: a body nested thousands deep raises RecursionError, which
    would otherwise be a 500. Messages name the problem without Python internals.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except ParseError as error:
            cause = error.__cause__ or error.__context__
            if isinstance(cause, json.JSONDecodeError):
                raise ParseError(
                    _("The body is not valid JSON: %(problem)s (line %(line)s, column %(column)s).")
                    % {"problem": cause.msg, "line": cause.lineno, "column": cause.colno}
                ) from None
            raise ParseError(_("The body is not valid JSON.")) from None
        except RecursionError:
            raise ParseError(_("The body is not valid JSON: it is nested too deeply.")) from None
