"""SMS / KakaoTalk 알림톡: the interface a Korean provider is wired behind, and the logging
sender used until one is (settings.SMS_SENDER). docs/notifications.md names the providers."""

import logging

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsSender:
    """Sends one text to one mobile number, or raises (the message is retried with backoff,
    as an email is). A provider's client goes into a subclass: NHN Cloud Notification
    (SMS and KakaoTalk Bizmessage 알림톡), Naver Cloud SENS, SOLAPI (CoolSMS) or Aligo."""

    def send(self, to: str, text: str) -> None:
        raise NotImplementedError


class LoggingSmsSender(SmsSender):
    """The default: writes what would be sent to the log, sends nothing."""

    def send(self, to: str, text: str) -> None:
        logger.info("SMS to %s: %s", to, text)


def sms_sender() -> SmsSender:
    return import_string(getattr(settings, "SMS_SENDER", "notifications.sms.LoggingSmsSender"))()
