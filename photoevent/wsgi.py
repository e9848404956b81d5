"""The WSGI application that gunicorn serves (scripts/run)."""

import os

from django.core.wsgi import get_wsgi_application

from photoevent.datadir import prepare_data_dir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photoevent.settings")
# Before Django loads the settings, which read the secret key made here.
prepare_data_dir()
application = get_wsgi_application()
