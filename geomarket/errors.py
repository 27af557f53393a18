"""Domain errors: raised by services, mapped to HTTP by `geomarket.api.exceptions`."""


class DomainError(Exception):
    """A rule of the domain was broken; `code` is stable, the message is for humans."""

    code = "error"
    status_code = 400
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, field: str | None = None, **extra):
        self.message = message or self.default_message
        self.field = field
        self.extra = extra
        super().__init__(self.message)


class Conflict(DomainError):
    code = "conflict"
    status_code = 409
    default_message = "The request conflicts with the current state."


class NotFound(DomainError):
    code = "not_found"
    status_code = 404
    default_message = "Not found."


class ServiceUnavailable(DomainError):
    code = "service_unavailable"
    status_code = 503
    default_message = "A dependency is unavailable; try again shortly."


class Forbidden(DomainError):
    code = "forbidden"
    status_code = 403
    default_message = "You do not have permission to perform this action."
