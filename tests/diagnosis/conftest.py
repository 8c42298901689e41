"""The same stand-ins and real clients as tests/cloud: the diagnosis runs on top of those adapters."""

from tests.cloud.conftest import apis, cloud, endpoints, now, staging

__all__ = ["apis", "cloud", "endpoints", "now", "staging"]
