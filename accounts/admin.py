import rest_framework.authtoken.admin  # noqa: F401  (registers TokenProxy; replaced below)
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework.authtoken.models import TokenProxy

from config.admin import ProtectedDeleteMixin

from .models import ApiToken, User, key_prefix


class OperatorUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name")


class OperatorUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(ProtectedDeleteMixin, DjangoUserAdmin):
    form = OperatorUserChangeForm
    add_form = OperatorUserCreationForm
    ordering = ["-date_joined"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups", "date_joined"]
    search_fields = ["email", "name"]
    readonly_fields = ["date_joined", "last_login"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Profile"), {"fields": ["name"]}),
        (
            _("Permissions"),
            {
                "fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"],
                "description": _(
                    "Operators: tick “Staff status” and add them to the “Sales staff” or "
                    "“Finance” group (docs/operators.md)."
                ),
            },
        ),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "name", "password1", "password2"]}),
    ]
    delete_refused_hint = _(
        "Deactivate the account instead: untick “Active” on its page. It can no longer log "
        "in; its bookings and money stay on the books."
    )


# --- API tokens ---------------------------------------------------------------------------------
# DRF's TokenAdmin lists every customer's key: whoever can see it can act as the customer.
# Ours shows a prefix and when it was made, never the key (list, page, search, history), and
# can only revoke.
admin.site.unregister(TokenProxy)


class ApiTokenChangeList(ChangeList):
    def url_for_result(self, result):
        # The token's page is addressed by its customer's id (ApiToken.pk), not its key.
        return reverse("admin:accounts_apitoken_change", args=[result.user_id])


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["key_start", "user", "created"]
    list_filter = ["created"]
    list_select_related = ["user"]
    search_fields = ["user__email"]  # never the key: a search must not confirm a guess
    search_help_text = _("Customer email")
    ordering = ["-created"]
    fields = ["key_start", "user", "created"]
    readonly_fields = fields
    actions = ["revoke"]

    def get_changelist(self, request, **kwargs):
        return ApiTokenChangeList

    def get_object(self, request, object_id, from_field=None):
        """The token of the customer with this id (the page's address)."""
        if not str(object_id).isdigit():
            return None
        return self.get_queryset(request).filter(user_id=int(object_id)).first()

    def has_add_permission(self, request):
        return False  # a token is made when the customer signs up or logs in

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Django's delete page and "delete selected" would write the object to the history
        # by its default name; "revoke" is the one way to end a token.
        return False

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("accounts.delete_apitoken")

    @admin.display(description=_("Key"))
    def key_start(self, token: ApiToken) -> str:
        return key_prefix(token.key)

    def changelist_view(self, request, extra_context=None):
        """The list's checkboxes carry customer ids (ApiToken.pk); the action runs on the
        keys they stand for, which never leave the server."""
        if request.method == "POST" and request.POST.getlist(ACTION_CHECKBOX_NAME):
            post = request.POST.copy()
            user_ids = [value for value in post.getlist(ACTION_CHECKBOX_NAME) if value.isdigit()]
            post.setlist(
                ACTION_CHECKBOX_NAME,
                list(ApiToken.objects.filter(user_id__in=user_ids).values_list("key", flat=True)),
            )
            request.POST = post
        return super().changelist_view(request, extra_context)

    @admin.action(
        description=_("Revoke the selected tokens (the customers log in again)"),
        permissions=["revoke"],
    )
    def revoke(self, request, queryset):
        tokens = list(queryset.select_related("user"))
        # History first (by prefix and customer id, as ApiToken names itself), then delete.
        self.log_deletions(request, tokens)
        deleted = ApiToken.objects.filter(key__in=[token.key for token in tokens]).delete()
        count = len(tokens) if deleted else 0
        self.message_user(
            request,
            ngettext(
                "%(count)s token revoked: its customer must log in again.",
                "%(count)s tokens revoked: their customers must log in again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
