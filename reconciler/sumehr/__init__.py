"""The Sumehr on the regional HUB: the publisher, its state, the KMEHR documents and the hubservices client."""
