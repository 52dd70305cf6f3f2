
POST https://198.18.1.10:9715/streams/data/jobs/2/OrdersIn/ports/0/tuples: HTTP 404: CDISW5000E The 2 job has no data exchange endpoints.
no data center runs the application
