"""The one exception type for mistakes a user can fix (bad config, missing data, ...)."""


class UserError(Exception):
    """A problem caused by input; the message names the thing and the fix."""


def unknown_name(kind: str, name: str, valid) -> UserError:
    """Build the error for an unknown name, listing the valid ones."""
    choices = ", ".join(sorted(valid))
    return UserError(f"unknown {kind} {name!r}; valid {kind}s: {choices}")
