from django.core.exceptions import ValidationError


class NotOnlyWhitespaceValidator:
    """Refuses a password of whitespace alone, which Django's validators let through from
    eight characters on: runs of spaces are among the first guesses, and a client that
    sends an empty-looking field by mistake locks its user out of a password it never saw."""

    def validate(self, password: str, user=None) -> None:
        if not password.strip():
            raise ValidationError(
                "This password is whitespace alone.", code="password_only_whitespace"
            )

    def get_help_text(self) -> str:
        return "Your password can't be whitespace alone."
