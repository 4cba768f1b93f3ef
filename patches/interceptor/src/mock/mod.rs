pub mod mock_builder;
pub mod mock_interceptor;
pub mod mock_stream;
pub mod mock_time;
