# Read by the flask command (python-dotenv). Production sets APP_ENV=production
# and SECRET_KEY in the real environment, which wins over this file.
FLASK_APP=wsgi.py
APP_ENV=development
