"""bin/chaos, the fault suite (issue 10): the production shape on a MariaDB and a Redis of its
own, a mixed on-sale load, each fault in turn, and after each the checks of what must hold.

    stack     the private servers (ops/servers.py), the schema, gunicorn behind nginx, Celery
    seed      the concerts on sale and their customers
    client    one HTTP client per customer thread; the recorder of every answer and write
    load      the customers: shoppers, line keepers, chargers
    faults    each fault, struck at the right moment
    watch     the queue seen from Redis: capacity samples, the line before and after
    checks    the database after each phase: invariants and acknowledged writes
    report    the numbers per phase, the must-hold checks, the table
"""
