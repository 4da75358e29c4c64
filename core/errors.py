"""The refusal every app raises for bad input; the site shows it on the form, the API as
problem+json (restapi.problems)."""


class InputError(Exception):
    """Bad user input. `errors` maps a field name to what is wrong with it.

    Subclasses set `code` (the API's stable problem code) and `http_status`.
    """

    code = "invalid_input"
    http_status = 400

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
