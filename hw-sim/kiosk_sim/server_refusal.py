"""The server simulator's refusal of a request: an HTTP status, a reason code and a message."""


class Refusal(Exception):
    """A request the server refuses: HTTP status, a reason code and a message."""

    def __init__(self, http_status, code, message):
        super().__init__(f"{code}: {message}")
        self.http_status = http_status
        self.code = code
        self.message = message
