-- users: the roles are executive | finance | analyst | admin (see package access); the column keeps its type, only its documentation changes.
ALTER TABLE users COMMENT COLUMN role 'executive | finance | analyst | admin (each includes the ones before)'
