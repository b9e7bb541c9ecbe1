mod keyring;
