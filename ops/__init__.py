"""Running the production shape's parts natively: the reverse proxy (nginx.py), and for the
fault suite (bin/chaos) MariaDB and Redis servers of its own."""
