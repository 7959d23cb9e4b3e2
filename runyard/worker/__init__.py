"""The worker: claims jobs from the server over HTTP and runs each as a subprocess."""
