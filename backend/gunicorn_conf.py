"""Gunicorn settings: ``gunicorn -c python:backend.gunicorn_conf 'backend:create_app()'``.

Every value can be overridden from the environment.
"""

import multiprocessing
import os

bind = os.environ.get("FIELDCASE_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("FIELDCASE_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("FIELDCASE_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("FIELDCASE_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("FIELDCASE_MAX_REQUESTS", "5000"))
max_requests_jitter = 500
limit_request_line = 8190
forwarded_allow_ips = os.environ.get("FIELDCASE_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("FIELDCASE_ACCESS_LOG", "-")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"
