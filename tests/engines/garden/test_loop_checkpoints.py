"""run_loop's checkpoints: Orbit's controller never saves (nor waits for a write) inside a budget
or evaluation run; the loop saves after each controller.train call at the manager's cadence,
asynchronously, and hands the manager back at the end. Fakes only: no model is built."""

from tfod_seg.engines.garden import loop, runtime


class FakeManager:
    """Orbit's rule of tf.train.CheckpointManager.save: with check_interval, only every `interval` steps."""

    def __init__(self, interval=20, last=0):
        self.checkpoint_interval = interval
        self.last = last
        self.saves = []
        self.synced = 0
        self.directory = "/model"

    def save(self, checkpoint_number, check_interval=True, options=None):
        if check_interval and checkpoint_number < self.last + self.checkpoint_interval:
            return None
        self.last = checkpoint_number
        self.saves.append((checkpoint_number, options.experimental_enable_async_checkpoint))
        return f"/model/ckpt-{checkpoint_number}"

    def sync(self):
        self.synced += 1


class FakeController:
    def __init__(self, manager):
        self.checkpoint_manager = manager


def test_loop_saves_at_the_managers_cadence_async_and_gives_the_manager_back():
    manager = FakeManager(interval=20, last=40)
    controller = FakeController(manager)
    ckpts = loop._Checkpoints(controller)
    # What Orbit's controller sees during the loop: no interval (it neither saves nor waits), the rest is the manager's.
    assert controller.checkpoint_manager.checkpoint_interval is None
    assert controller.checkpoint_manager.directory == "/model"
    for step in (50, 60, 70, 80, 90, 94):
        ckpts.save(step)
    ckpts.save(94, force=True)  # the last checkpoint
    assert manager.saves == [(60, runtime.ASYNC_CHECKPOINTS), (80, runtime.ASYNC_CHECKPOINTS),
                             (94, runtime.ASYNC_CHECKPOINTS)]
    ckpts.save(94, force=True)  # already saved at this step: not written twice
    assert len(manager.saves) == 3
    ckpts.close()
    assert manager.synced == 1 and controller.checkpoint_manager is manager


def test_without_checkpoint_interval_the_controller_keeps_its_manager_and_nothing_is_saved():
    manager = FakeManager(interval=None)
    controller = FakeController(manager)
    ckpts = loop._Checkpoints(controller)
    assert controller.checkpoint_manager is manager
    ckpts.save(10)
    ckpts.save(10, force=True)
    ckpts.close()
    assert manager.saves == [] and manager.synced == 0
