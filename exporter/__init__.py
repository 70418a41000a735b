"""entra-credential-exporter: MFA and SSPR registration coverage of Entra ID tenants, for Prometheus."""

__version__ = "0.1.0"
