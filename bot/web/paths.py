"""The public paths of the webhooks: providers are told these, so they never change lightly."""

TWILIO_SMS_PATH = "/webhooks/twilio/sms"
TWILIO_STATUS_PATH = "/webhooks/twilio/status"
TELEGRAM_PATH = "/webhooks/telegram"
