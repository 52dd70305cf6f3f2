@process @pe-kill
Feature: A crashed process of the orders application restarts where it runs
  As the owner of the orders service
  I want a crashed processing element to be restarted in its own data center
  So that a single failing process never causes a failover

  Scenario: the aggregator restarts in dc1 when its processing element is killed
    Given the "orders" application runs active in "dc1" with "dc2" on standby
    And orders flow at 200 tuples per second
    And the system has been steady for 5 seconds
    When the processing element running "Aggregator" in "dc1" is killed
    Then no failover happens for 10 seconds
