"""Local fakes of the Telegram Bot API and the Twilio REST API that the real SDKs talk to."""
