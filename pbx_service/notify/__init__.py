"""Notifications about new voicemails and callback tasks: e-mail (SMTP) and signed webhooks.

- `outbox`: the ``notifications`` table. `enqueue_for_calls()` runs in the call-log writer's
  transaction, so a notification exists exactly when what it is about was committed;
  `claim()` and the ``mark_*`` functions are the dispatcher's side.
- `dispatcher.NotificationDispatcher`: the background sender (retries with backoff, a lease
  for crashed senders, ``FOR UPDATE SKIP LOCKED`` between daemons).
- `payload`, `render`, `signing`, `backoff`: pure pieces (what a message says, how it looks,
  the webhook HMAC, the retry schedule).
- `smtp`, `webhook`, `audio`: the outside world (aiosmtplib, aiohttp, recordings + pydub).
- `errors`: `NotifyError` and its subclasses.

Layering: this package reads ``config.notify`` and ``store.rows``; the store's writer imports
only `outbox.enqueue_for_calls`, and nothing `outbox` imports leads back to the writer.
"""
