"""The Flask extensions, created without an app and bound in ``create_app``."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from .web.api import Api

#: flask-smorest: blueprints, the error shape, the OpenAPI document.
api = Api()
#: flask-limiter, keyed by client address (see ``web.limits``).
limiter = Limiter(get_remote_address)
