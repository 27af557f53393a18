from geomarket.accounts.roles import user_courier_id, user_merchant_id, user_roles


def user_profile(*, user) -> dict:
    return {
        "id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "roles": [role.value for role in user_roles(user)],
        "merchant_id": user_merchant_id(user),
        "courier_id": user_courier_id(user),
    }
