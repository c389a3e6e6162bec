from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record operators inspect but never type into: money and reservations change only
    through services (payment, refund, expiry), which keep the ledger and seats in step."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
