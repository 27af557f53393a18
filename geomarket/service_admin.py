"""Admin pages whose writes go through the domain's services.

Django's admin saves and deletes rows itself. A write made that way would skip what the
services do around it: the domain's rules, and the invalidation, once the write commits,
of every cached answer built from the rows it changes (`answer_cache.versions_bump`). With
`ServiceAdmin`, the admin's forms still validate the fields; the write itself (create,
update, delete, and the bulk delete action) is the app's service's, told who writes
where its rules ask (`create_as`, `update_as`).
"""

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponseRedirect

from geomarket.errors import DomainError


class ServiceAdmin:
    """Mixed in before a ModelAdmin; `create`, `update` and `delete` call the services."""

    def create(self, data: dict):
        """Create the row from the form's cleaned fields and return it."""
        raise NotImplementedError

    def update(self, obj, data: dict) -> None:
        """Save `obj`, whose fields the form has set, given the fields that changed."""
        raise NotImplementedError

    def delete(self, obj) -> None:
        raise NotImplementedError

    def create_as(self, actor, data: dict):
        """`create`, for a service whose rules ask who writes: `actor`, the signed-in user."""
        return self.create(data)

    def update_as(self, actor, obj, data: dict) -> None:
        """`update`, for a service whose rules ask who writes: `actor`, the signed-in user."""
        self.update(obj, data)

    def delete_as(self, actor, obj) -> None:
        """`delete`, for a service whose rules ask who deletes: `actor`, the signed-in user."""
        self.delete(obj)

    def lock_for_delete(self, queryset) -> None:
        """Lock ahead, in the one order their app takes them in, the rows of other tables
        of which deleting `queryset` locks several (stock rows): the deletes run one by one
        in the queryset's order."""

    def save_model(self, request, obj, form, change):
        if change:
            changed = {name: form.cleaned_data[name] for name in form.changed_data}
            self.update_as(request.user, obj, changed)
            return
        created = self.create_as(request.user, dict(form.cleaned_data))
        # The admin goes on with its own instance (its log entry, redirect and inlines):
        # it becomes the row the service created.
        vars(obj).update(vars(created))

    def delete_model(self, request, obj):
        self.delete_as(request.user, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            self.lock_for_delete(queryset)
            for obj in queryset:
                self.delete_as(request.user, obj)

    def changeform_view(self, request, *args, **kwargs):
        # A rule the form does not know (a zone's largest area, say) is the service's to
        # refuse; the admin's transaction then rolls the whole save back.
        try:
            return super().changeform_view(request, *args, **kwargs)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
