"""What each outgoing message gets besides its content: the envelope sender (VERP) and DKIM.

message ─► envelope (MAIL FROM, DKIM-Signature) ─► smtp; built once per send, used per message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.mail.verp import verp_address, verp_code
from digest.tokens import check_secret

if TYPE_CHECKING:
    from digest.mail.dkim import DkimSigner
    from digest.settings import Settings


class Envelope:
    """MAIL FROM per delivery (bounces+<code>@… with email.bounce_address) and the DKIM
    signature (with email.dkim); the key is read here, once."""

    def __init__(self, settings: Settings) -> None:
        self.from_address = settings.email.from_address
        self.bounce_address = settings.email.bounce_address
        self._secret = settings.web.secret.get_secret_value()
        if self.bounce_address:
            check_secret(self._secret)
        dkim = settings.email.dkim
        self.signer: DkimSigner | None = None
        if dkim:
            # dkimpy and cryptography (~50 ms to import) load only for those who sign.
            from digest.mail.dkim import load_dkim_signer

            self.signer = load_dkim_signer(dkim.domain, dkim.selector, dkim.private_key_file)

    def mail_from(self, run_id: int | None = None, subscriber_id: int | None = None) -> str:
        """The envelope sender: a VERP address naming the delivery, else the plain one."""
        if not self.bounce_address:
            return self.from_address
        if run_id is None or subscriber_id is None:
            return self.bounce_address  # a test send: bounces come back, to no delivery
        return verp_address(self.bounce_address, verp_code(self._secret, run_id, subscriber_id))

    def sign(self, data: bytes) -> bytes:
        """The message with its DKIM-Signature, or as it is without email.dkim."""
        return data if self.signer is None else self.signer.sign(data)
