# The webhook tests' receiver (a real HTTP server on 127.0.0.1) serves the end-to-end test.
from tests.webhooks.conftest import receiver  # noqa: F401
