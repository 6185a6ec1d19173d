"""An in-memory `Mailer` for tests and demos: keeps the messages instead of sending them.

mailer = InMemoryMailer()
dispatcher = NotificationDispatcher(url, settings, mailer=mailer)
...
assert mailer.messages[0]["Subject"].startswith("Voicemail from")
"""

from __future__ import annotations

from email.message import EmailMessage

from pbx_service.config.notify import EmailSettings
from pbx_service.notify.errors import DeliveryError


class InMemoryMailer:
    """Accepts every message (or refuses the next ``refuse`` ones, as a server would)."""

    def __init__(self, *, refuse: int = 0) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = refuse
        self.refused = 0

    async def send(self, message: EmailMessage, settings: EmailSettings) -> None:
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            raise DeliveryError(f"SMTP {settings.host}:{settings.smtp_port} refused: 451 try later")
        self.messages.append(message)
