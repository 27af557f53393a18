from django.contrib import admin
from django.utils import timezone

from geomarket.hooks import hook_call
from geomarket.maps.admin import MapAdmin
from geomarket.service_admin import ServiceAdmin
from merchants.models import (
    Address,
    Closure,
    DeliveryZone,
    Merchant,
    OpeningInterval,
    SlotBooking,
    SlotPlan,
)
from merchants.services import (
    address_create,
    address_delete,
    address_update,
    closure_create,
    closure_delete,
    delivery_zone_create,
    delivery_zone_delete,
    delivery_zone_update,
    merchant_create,
    merchant_delete,
    merchant_hours_replace,
    merchant_update,
    slot_plan_delete,
    slot_plan_set,
)


@admin.register(Address)
class AddressAdmin(ServiceAdmin, MapAdmin):
    list_display = ("id", "line1", "postal_code", "city", "country")
    list_filter = ("country", "city")
    search_fields = ("line1", "postal_code", "city")

    def create(self, data):
        return address_create(**data)

    def update(self, obj, data):
        address_update(address=obj, data=data)

    def delete(self, obj):
        address_delete(address=obj)


class DeliveryZoneInline(admin.TabularInline):
    model = DeliveryZone
    fields = ("name", "delivery_fee", "min_order_amount", "is_active")
    extra = 0
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        # A zone needs its area, drawn on the zone's own page.
        return False


@admin.register(Merchant)
class MerchantAdmin(ServiceAdmin, MapAdmin):
    list_display = ("id", "name", "owner", "is_active", "require_handover_code", "created_at")
    list_filter = ("is_active", "require_handover_code", "categories")
    search_fields = ("name", "owner__username", "phone")
    raw_id_fields = ("owner", "address")
    # Learned from the orders' history by beat (`merchant_prep_times_learn`); set by
    # `merchant_update` from who turns the merchant off.
    readonly_fields = (
        "location",
        "learned_prep_time_s",
        "deactivated_by_operator",
        "created_at",
        "updated_at",
    )
    filter_horizontal = ("categories",)
    inlines = [DeliveryZoneInline]

    def create_as(self, actor, data):
        return merchant_create(**data, actor=actor)

    def update_as(self, actor, obj, data):
        merchant_update(merchant=obj, data=data, actor=actor)

    def delete_as(self, actor, obj):
        merchant_delete(merchant=obj, actor=actor)

    def lock_for_delete(self, queryset):
        # Catalog's Product, named by the relation: merchants import no higher app.
        products = Merchant._meta.get_field("products").related_model
        hook_call(
            "products_deleting",
            product_ids=products.objects.filter(merchant__in=queryset).values("pk"),
        )

    def save_formset(self, request, form, formset, change):
        """The zones edited on the merchant's page, through the zone services."""
        formset.save(commit=False)
        for zone in formset.deleted_objects:
            delivery_zone_delete(zone=zone)
        for zone, changed in formset.changed_objects:
            delivery_zone_update(zone=zone, data={name: getattr(zone, name) for name in changed})


@admin.register(DeliveryZone)
class DeliveryZoneAdmin(ServiceAdmin, MapAdmin):
    list_display = ("id", "name", "merchant", "delivery_fee", "min_order_amount", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "merchant__name")
    raw_id_fields = ("merchant",)

    def create(self, data):
        return delivery_zone_create(**data)

    def update(self, obj, data):
        delivery_zone_update(zone=obj, data=data)

    def delete(self, obj):
        delivery_zone_delete(zone=obj)


def _week_of(merchant_id: int, *, without=None) -> list[dict]:
    intervals = OpeningInterval.objects.filter(merchant_id=merchant_id)
    if without is not None:
        intervals = intervals.exclude(pk=without.pk)
    return list(intervals.values("weekday", "opens", "closes"))


@admin.register(OpeningInterval)
class OpeningIntervalAdmin(ServiceAdmin, admin.ModelAdmin):
    """One interval at a time, written as the merchant's whole week is: through
    `merchant_hours_replace`, which refuses overlaps."""

    list_display = ("id", "merchant", "weekday", "opens", "closes")
    list_filter = ("weekday",)
    raw_id_fields = ("merchant",)

    def _replace(self, merchant: Merchant, weekly: list[dict]) -> None:
        merchant_hours_replace(merchant=merchant, timezone=merchant.timezone, weekly=weekly)

    def create(self, data):
        merchant = data.pop("merchant")
        self._replace(merchant, [*_week_of(merchant.pk), data])
        return OpeningInterval.objects.filter(merchant=merchant, **data).get()

    def update(self, obj, data):
        fields = {name: getattr(obj, name) for name in ("weekday", "opens", "closes")}
        self._replace(obj.merchant, [*_week_of(obj.merchant_id, without=obj), fields])

    def delete(self, obj):
        self._replace(obj.merchant, _week_of(obj.merchant_id, without=obj))


@admin.register(Closure)
class ClosureAdmin(ServiceAdmin, admin.ModelAdmin):
    list_display = ("id", "merchant", "period", "reason")
    raw_id_fields = ("merchant",)

    def create(self, data):
        period = data["period"]
        return closure_create(
            merchant=data["merchant"],
            starts_at=period.lower,
            ends_at=period.upper,
            reason=data.get("reason", ""),
        )

    def has_change_permission(self, request, obj=None):
        # A closure is replaced, not edited: deleted, then added again.
        return False

    def delete(self, obj):
        closure_delete(closure=obj)


@admin.register(SlotPlan)
class SlotPlanAdmin(ServiceAdmin, admin.ModelAdmin):
    list_display = ("merchant", "slot_minutes", "capacity", "lead_minutes", "horizon_days")
    raw_id_fields = ("merchant",)
    readonly_fields = ("upcoming_bookings",)

    @admin.display(description="Upcoming bookings")
    def upcoming_bookings(self, plan) -> str:
        # Bookings have no page of their own: Django's admin cannot show a model with a
        # composite primary key. Orders book and release them.
        bookings = (
            SlotBooking.objects.filter(merchant_id=plan.merchant_id, starts_at__gte=timezone.now())
            .order_by("starts_at", "ends_at")
            .values_list("starts_at", "ends_at", "booked")[:50]
        )
        # Each booked window, as a plan or hours changed since may have cut two that
        # start together.
        return (
            ", ".join(
                f"{starts_at:%Y-%m-%d %H:%M} to {ends_at:%H:%M} UTC: {booked}"
                for starts_at, ends_at, booked in bookings
            )
            or "none"
        )

    def create(self, data):
        return slot_plan_set(**data)

    def update(self, obj, data):
        slot_plan_set(
            merchant=obj.merchant,
            slot_minutes=obj.slot_minutes,
            capacity=obj.capacity,
            lead_minutes=obj.lead_minutes,
            horizon_days=obj.horizon_days,
        )

    def delete(self, obj):
        slot_plan_delete(merchant=obj.merchant)
