"""The ``spectral-probe`` command line (installed as the package ``spectral_probe_cli``)."""
