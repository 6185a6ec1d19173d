"""Sending notification e-mails over SMTP (aiosmtplib)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from pbx_service.config.notify import EmailSettings
from pbx_service.notify.errors import DeliveryError


class Mailer(Protocol):
    """Sends one message; raises `DeliveryError` when it was not accepted."""

    async def send(self, message: EmailMessage, settings: EmailSettings) -> None: ...


class SmtpMailer:
    """One SMTP connection per message: notifications are rare and a kept-open connection
    would only time out between them."""

    async def send(self, message: EmailMessage, settings: EmailSettings) -> None:
        where = f"SMTP {settings.host}:{settings.smtp_port}"
        username = settings.username or None
        try:
            async with asyncio.timeout(settings.timeout):
                await aiosmtplib.send(
                    message,
                    hostname=settings.host,
                    port=settings.smtp_port,
                    username=username,
                    password=settings.password.get_secret_value() if username else None,
                    use_tls=settings.security == "ssl",
                    # True, not "if offered": never fall back to plain text silently.
                    start_tls=settings.security == "starttls",
                    timeout=settings.timeout,
                )
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"{where} refused: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            raise DeliveryError(f"{where} refused the recipients: {refused}") from exc
        except aiosmtplib.SMTPException as exc:
            raise DeliveryError(f"{where}: {exc}") from exc
        except TimeoutError as exc:
            raise DeliveryError(f"{where}: no answer within {settings.timeout:g}s") from exc
        except OSError as exc:
            raise DeliveryError(f"{where}: {exc.strerror or exc}") from exc
