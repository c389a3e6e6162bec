"""Who may open the console's pages, and how they are drawn: as admin pages."""

from collections.abc import Callable
from functools import wraps

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def console_view(*permissions: str) -> Callable:
    """Staff only, like every admin page: admin.site.admin_view sends anyone else to the
    admin login, and adds never_cache and CSRF protection. And, as the admin's own pages
    do, only for operators allowed to view what the page shows (customers' data and
    money), so a staff account limited to the catalog does not read the ledger here."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.has_perms(permissions):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return admin.site.admin_view(checked)

    return decorate


def render_console(
    request: HttpRequest, template: str, title: str, context: dict, *, status: int = 200
) -> HttpResponse:
    """A console page in the admin's frame: its header, sidebar and styles (each_context)."""
    return render(
        request,
        template,
        {**admin.site.each_context(request), "title": title, **context},
        status=status,
    )
