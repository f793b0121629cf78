"""``MaildirOutbound``: the email channel's outbound side writing mail to a local maildir.

For local runs without a relay (``outerloop dev``): every mail that would be sent, approval
requests with their reply addresses included, lands in the maildir, where a person reads it
and answers by mailing the inbox, so the mail approval path works offline.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

from channels.email.compose import Composed, Letterhead
from channels.email.outbound import EmailOutbound, RelayConfig


class MaildirOutbound(EmailOutbound):
    def __init__(self, directory: Path, letterhead: Letterhead) -> None:
        super().__init__(RelayConfig(host="maildir"), letterhead)
        self.directory = directory

    def send(self, composed: Composed) -> None:
        """Write each copy into the maildir's ``new/``, as a local delivery would."""
        box = mailbox.Maildir(self.directory, create=True)
        for copy in composed.copies:
            box.add(copy.message)
