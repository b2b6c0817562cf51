"""The errors of the run package, and how an AWS error is named."""
from typing import Any


class ChronosError(Exception):
    """An error the CLI reports as one line, `chronos-training: error: ...`, with exit code 2 for usage errors."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


def error_code(e: Any) -> str:
    """The code of an AWS error (`InsufficientInstanceCapacity`, `NoSuchKey`...), else the exception's class name."""
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        if code:
            return str(code)
    return type(e).__name__


def error_message(e: Any) -> str:
    """The message of an AWS error as the service wrote it, else the exception's text."""
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        message = (response.get("Error") or {}).get("Message")
        if message:
            return str(message)
    return str(e)


def http_status(e: Any) -> Any:
    """The HTTP status of an AWS error, if known."""
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return None


def is_not_found(e: Any) -> bool:
    """Whether an S3 error means "no such object"."""
    return error_code(e) in ("NotFound", "NoSuchKey", "404") or http_status(e) == 404
