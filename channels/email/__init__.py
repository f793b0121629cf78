"""The email channel: an SMTP inbox that starts and continues threads and takes answers
by reply, and threaded replies sent through an SMTP relay.

- ``parse``: raw bytes -> an ``InboundMail`` (the new text, threading headers, author);
- ``htmltext`` and ``quotes``: HTML-only mail to text; quoted replies and signatures out;
- ``addresses``: recipients, plus-addressing, sender allowlists, Message-ID routes;
- ``replies``: reply tokens of one person each, and an answer mail -> ``Gateway.respond``;
- ``inbound``: the aiosmtpd handler that verifies and persists mail before ``250 OK``;
- ``server``: the SMTP server itself (size limit, STARTTLS, AUTH, refusals logged);
- ``compose`` and ``outbound``: events -> threaded mails, sent over SMTP.
"""

CHANNEL = "email"
"""The channel name in the origin of threads that came in by mail."""
