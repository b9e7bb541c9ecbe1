//! Schedule: inside a deploy window, outside freezes, enough people at work.
