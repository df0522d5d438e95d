"""MLflow: locations (``locations``), the registry and the comparison read back (``registry``).

Nothing here imports training code, plotting or lifelines: the service uses ``locations``.
"""
