"""Network architectures (torch) known to the SDK, looked up by the id a model's config.json names."""

from cfcsp_sdk.models.registry import build_network, list_architectures, register_architecture

__all__ = ["build_network", "list_architectures", "register_architecture"]
