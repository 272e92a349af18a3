"""The HTTP API: route modules (each exports ``OPERATIONS``), request/response schemas,
the operation registry the OpenAPI document is built from."""
