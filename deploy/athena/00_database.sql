CREATE DATABASE IF NOT EXISTS flowline
COMMENT 'Flowline analytics lake';
