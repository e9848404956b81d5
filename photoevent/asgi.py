import os

from django.core.asgi import get_asgi_application

from photoevent.datadir import prepare_data_dir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photoevent.settings")
prepare_data_dir()
application = get_asgi_application()
