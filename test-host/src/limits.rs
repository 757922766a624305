//! Caps on what the host keeps on a module's behalf. The module's own memory is capped by the
//! store; these cap the copies the host makes (shared data, queues, logs, metrics, callouts), so a
//! hostile module cannot take the test process's memory through hostcalls: every store a module
//! can grow by calling again and again has a cap.
//!
//! A hostcall that would pass a cap fails with `InternalFailure` (a log line or an output write
//! past its cap is dropped), and the plugin's log gets one error line naming the cap and its value.

/// The caps of a [`TestHost`](crate::TestHost) and its plugins. Each has a builder method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub(crate) shared_data_bytes: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) queues: usize,
    pub(crate) log_bytes: usize,
    pub(crate) output_capture_bytes: usize,
    pub(crate) metrics: usize,
    pub(crate) metric_name_bytes: usize,
    pub(crate) histogram_values: usize,
    pub(crate) pending_callouts: usize,
    pub(crate) callout_bytes: usize,
    pub(crate) trace_entries: usize,
    pub(crate) stream_data_bytes: usize,
    pub(crate) pending_stream_actions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            shared_data_bytes: 64 << 20,
            queue_bytes: 64 << 20,
            queues: 10_000,
            log_bytes: 16 << 20,
            output_capture_bytes: 1 << 20,
            metrics: 10_000,
            metric_name_bytes: 1024,
            histogram_values: 1_000_000,
            pending_callouts: 10_000,
            callout_bytes: 64 << 20,
            trace_entries: 10_000,
            stream_data_bytes: 64 << 20,
            pending_stream_actions: 10_000,
        }
    }
}

impl Limits {
    /// Shared data, keys and values, host-wide. Default 64 MiB.
    pub fn shared_data_bytes(mut self, bytes: usize) -> Self {
        self.shared_data_bytes = bytes;
        self
    }

    /// Items waiting in shared queues, and queue names, host-wide. Default 64 MiB.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Shared queues registered, host-wide. Default 10,000.
    pub fn queues(mut self, count: usize) -> Self {
        self.queues = count;
        self
    }

    /// Log lines kept per plugin (`proxy_log`, stdout, stderr), in message bytes. Default 16 MiB.
    pub fn log_bytes(mut self, bytes: usize) -> Self {
        self.log_bytes = bytes;
        self
    }

    /// Raw stdout, and raw stderr, kept per plugin for `Plugin::stdout`/`stderr`. Default 1 MiB.
    pub fn output_capture_bytes(mut self, bytes: usize) -> Self {
        self.output_capture_bytes = bytes;
        self
    }

    /// Distinct metric names host-wide, and metric definitions per plugin. Default 10,000.
    pub fn metrics(mut self, count: usize) -> Self {
        self.metrics = count;
        self
    }

    /// Longest metric name. Default 1,024 bytes.
    pub fn metric_name_bytes(mut self, bytes: usize) -> Self {
        self.metric_name_bytes = bytes;
        self
    }

    /// Values recorded into histograms, all histograms together, host-wide. Default 1,000,000.
    pub fn histogram_values(mut self, count: usize) -> Self {
        self.histogram_values = count;
        self
    }

    /// HTTP calls, gRPC calls and gRPC streams pending per plugin. Default 10,000.
    pub fn pending_callouts(mut self, count: usize) -> Self {
        self.pending_callouts = count;
        self
    }

    /// Bytes of pending callouts per plugin (headers, bodies, messages). Default 64 MiB.
    pub fn callout_bytes(mut self, bytes: usize) -> Self {
        self.callout_bytes = bytes;
        self
    }

    /// Largest header or trailer map, body, or set of properties a module can build in one
    /// stream, in bytes of names and values. Default 64 MiB.
    pub fn stream_data_bytes(mut self, bytes: usize) -> Self {
        self.stream_data_bytes = bytes;
        self
    }

    /// `proxy_continue_stream` and `proxy_close_stream` calls one callback may queue (they act
    /// after it returns). Default 10,000.
    pub fn pending_stream_actions(mut self, count: usize) -> Self {
        self.pending_stream_actions = count;
        self
    }

    /// Hostcall trace entries kept per plugin; older entries are dropped. Default 10,000.
    pub fn trace_entries(mut self, count: usize) -> Self {
        self.trace_entries = count;
        self
    }
}

/// A cap, for the log line that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cap {
    SharedDataBytes,
    QueueBytes,
    Queues,
    LogBytes,
    OutputCaptureBytes,
    Metrics,
    MetricNameBytes,
    HistogramValues,
    PendingCallouts,
    CalloutBytes,
    StreamDataBytes,
    PendingStreamActions,
}

impl Cap {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cap::SharedDataBytes => "shared_data_bytes",
            Cap::QueueBytes => "queue_bytes",
            Cap::Queues => "queues",
            Cap::LogBytes => "log_bytes",
            Cap::OutputCaptureBytes => "output_capture_bytes",
            Cap::Metrics => "metrics",
            Cap::MetricNameBytes => "metric_name_bytes",
            Cap::HistogramValues => "histogram_values",
            Cap::PendingCallouts => "pending_callouts",
            Cap::CalloutBytes => "callout_bytes",
            Cap::StreamDataBytes => "stream_data_bytes",
            Cap::PendingStreamActions => "pending_stream_actions",
        }
    }

    pub(crate) fn value(self, limits: &Limits) -> usize {
        match self {
            Cap::SharedDataBytes => limits.shared_data_bytes,
            Cap::QueueBytes => limits.queue_bytes,
            Cap::Queues => limits.queues,
            Cap::LogBytes => limits.log_bytes,
            Cap::OutputCaptureBytes => limits.output_capture_bytes,
            Cap::Metrics => limits.metrics,
            Cap::MetricNameBytes => limits.metric_name_bytes,
            Cap::HistogramValues => limits.histogram_values,
            Cap::PendingCallouts => limits.pending_callouts,
            Cap::CalloutBytes => limits.callout_bytes,
            Cap::StreamDataBytes => limits.stream_data_bytes,
            Cap::PendingStreamActions => limits.pending_stream_actions,
        }
    }

    /// The line a plugin's log gets the first time it hits this cap.
    pub(crate) fn message(self, limits: &Limits) -> String {
        self.message_for(self.value(limits))
    }

    pub(crate) fn message_for(self, value: usize) -> String {
        format!(
            "test-host: cap {} ({value}) reached: the host keeps no more for the module (Limits::{})",
            self.name(),
            self.name()
        )
    }
}
