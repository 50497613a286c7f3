//! The ttrpc face of [`TaskService`]: each method delegates to the service and converts its
//! error with the one `From<TaskError>` impl. Calls wasmpod does not implement answer
//! `Unimplemented` (the generated defaults would answer `NotFound`).

use async_trait::async_trait;
use containerd_shim::TtrpcResult;
use containerd_shim::api::{
    CheckpointTaskRequest, CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest,
    CreateTaskResponse, DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest,
    PauseRequest, PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest,
    StartRequest, StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse,
    UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim::protos::shim_async::Task;
use containerd_shim::protos::ttrpc::r#async::TtrpcContext;

use super::TaskService;
use crate::error::TaskError;
use crate::runtime::PodRuntime;

fn unimplemented<T>(what: &str) -> TtrpcResult<T> {
    Err(TaskError::unimplemented(what).into())
}

#[async_trait]
impl<R: PodRuntime> Task for TaskService<R> {
    async fn state(&self, _: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        Ok(TaskService::state(self, req)?)
    }

    async fn create(
        &self,
        _: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        Ok(TaskService::create(self, req).await?)
    }

    async fn start(&self, _: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        Ok(TaskService::start(self, req).await?)
    }

    async fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        Ok(TaskService::delete(self, req).await?)
    }

    async fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        Ok(TaskService::pids(self, req)?)
    }

    async fn pause(&self, _: &TtrpcContext, _: PauseRequest) -> TtrpcResult<Empty> {
        unimplemented("pause")
    }

    async fn resume(&self, _: &TtrpcContext, _: ResumeRequest) -> TtrpcResult<Empty> {
        unimplemented("resume")
    }

    async fn checkpoint(&self, _: &TtrpcContext, _: CheckpointTaskRequest) -> TtrpcResult<Empty> {
        unimplemented("checkpoint")
    }

    async fn kill(&self, _: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        TaskService::kill(self, req)?;
        Ok(Empty::default())
    }

    async fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        TaskService::exec(self, req)?;
        Ok(Empty::default())
    }

    async fn resize_pty(&self, _: &TtrpcContext, _: ResizePtyRequest) -> TtrpcResult<Empty> {
        // Exec'd processes write to plain streams: there is no terminal to resize.
        Ok(Empty::default())
    }

    async fn close_io(&self, _: &TtrpcContext, _: CloseIORequest) -> TtrpcResult<Empty> {
        // containerd closes its end of the stdin FIFO itself; the process then reads the end
        // of its input.
        Ok(Empty::default())
    }

    async fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        TaskService::update(self, req)?;
        Ok(Empty::default())
    }

    async fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        Ok(TaskService::wait(self, req).await?)
    }

    async fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        Ok(TaskService::stats(self, req)?)
    }

    async fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        Ok(TaskService::connect(self, req)?)
    }

    async fn shutdown(&self, _: &TtrpcContext, _: ShutdownRequest) -> TtrpcResult<Empty> {
        TaskService::shutdown(self);
        Ok(Empty::default())
    }
}
