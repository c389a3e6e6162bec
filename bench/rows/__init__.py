"""The suite's rows, one module per family; each prepares its data before the system starts
and hands back what to measure:

    ceiling_and_queue   ceiling, queue enter, queue status 10k / 1M       (reads)
    seat_map            seat map 50 / 5000                                (reads)
    writes              hold contended / uncontended, payment, wallet charge, and their checks
    onsale              the on-sale crowd (Locust; the crowd is onsale_locustfile.py)
"""
