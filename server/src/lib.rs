//! qraft-server: flags, wiring, HTTP endpoints, the CLI and the benchmark tool.
