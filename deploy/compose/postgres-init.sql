-- Run once by the postgres image on first start (/docker-entrypoint-initdb.d).
-- Each service owns its data: one database and one login role per service.
-- Passwords here are for the local compose stack only.
CREATE ROLE featurestore LOGIN PASSWORD 'featurestore';
CREATE DATABASE featurestore OWNER featurestore;
CREATE ROLE registry LOGIN PASSWORD 'registry';
CREATE DATABASE registry OWNER registry;
CREATE ROLE validator LOGIN PASSWORD 'validator';
CREATE DATABASE validator OWNER validator;
CREATE ROLE serving LOGIN PASSWORD 'serving';
CREATE DATABASE serving OWNER serving;
CREATE ROLE observability LOGIN PASSWORD 'observability';
CREATE DATABASE observability OWNER observability;
